-- shape: single-source derived table pushed whole inside a cross-source query
SELECT t.contact_id, t.n, c.name FROM (SELECT contact_id, COUNT(*) AS n FROM crm.tickets GROUP BY contact_id) t JOIN sales.customers c ON c.customer_id = t.contact_id
-- plan
fragment __fragment_1 @ crm_db: whole query
  SELECT "tickets"."contact_id" AS "contact_id", COUNT(*) AS "n" FROM "public"."tickets" AS "tickets" GROUP BY "tickets"."contact_id"
fragment __fragment_2 @ sales_db: scan
  SELECT "c"."customer_id" AS "customer_id", "c"."name" AS "name" FROM "customers" AS "c"
merge @ duckdb: merge of the fragments
  SELECT "t"."contact_id" AS "contact_id", "t"."n" AS "n", "c"."name" AS "name" FROM "__fragment_1" AS "t" CROSS JOIN "__fragment_2" AS "c" WHERE "c"."customer_id" = "t"."contact_id"
