-- shape: correlated scalar subquery inside PostgreSQL decorrelated into a join and pushed whole
SELECT t.ticket_id FROM crm.tickets t WHERE t.priority < (SELECT MAX(t2.priority) FROM crm.tickets t2 WHERE t2.contact_id = t.contact_id) ORDER BY t.ticket_id
-- plan
fragment __fragment_1 @ crm_db: whole query
  SELECT "t"."ticket_id" AS "ticket_id" FROM "public"."tickets" AS "t" LEFT JOIN (SELECT MAX("t2"."priority") AS "_col_0", "t2"."contact_id" AS "_u_1" FROM "public"."tickets" AS "t2" GROUP BY "t2"."contact_id") AS "_u_0" ON "t"."contact_id" = "_u_0"."_u_1" WHERE "t"."priority" < "_u_0"."_col_0" ORDER BY "t"."ticket_id"
