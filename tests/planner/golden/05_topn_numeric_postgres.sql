-- shape: top-N on a numeric key pushed to PostgreSQL
SELECT ticket_id, priority FROM crm.tickets ORDER BY ticket_id DESC LIMIT 5
-- plan
fragment __fragment_1 @ crm_db: whole query
  SELECT "tickets"."ticket_id" AS "ticket_id", "tickets"."priority" AS "priority" FROM "public"."tickets" AS "tickets" ORDER BY "ticket_id" DESC NULLS LAST LIMIT 5
