-- shape: LIMIT pushed with the whole single-source query
SELECT ticket_id, priority FROM crm.tickets WHERE priority = 1 LIMIT 5
-- plan
fragment __fragment_1 @ crm_db: whole query
  SELECT "tickets"."ticket_id" AS "ticket_id", "tickets"."priority" AS "priority" FROM "public"."tickets" AS "tickets" WHERE "tickets"."priority" = 1 LIMIT 5
