-- shape: aggregate pushed to PostgreSQL
SELECT priority, COUNT(*) AS n, MIN(opened_at) AS first FROM crm.tickets GROUP BY priority ORDER BY priority NULLS FIRST
-- plan
fragment __fragment_1 @ crm_db: whole query
  SELECT "tickets"."priority" AS "priority", COUNT(*) AS "n", MIN("tickets"."opened_at") AS "first" FROM "public"."tickets" AS "tickets" GROUP BY "tickets"."priority" ORDER BY "priority" NULLS FIRST
