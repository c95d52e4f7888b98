-- shape: correlated EXISTS decorrelated into a join
SELECT c.customer_id FROM sales.customers c WHERE EXISTS (SELECT 1 FROM crm.contacts k WHERE k.customer_id = c.customer_id AND k.email IS NOT NULL)
-- plan
fragment __fragment_1 @ crm_db: whole query
  SELECT "k"."customer_id" AS "_u_1" FROM "public"."contacts" AS "k" WHERE NOT "k"."email" IS NULL GROUP BY "k"."customer_id"
fragment __fragment_2 @ sales_db: scan
  SELECT "c"."customer_id" AS "customer_id" FROM "customers" AS "c"
merge @ duckdb: merge of the fragments
  SELECT "c"."customer_id" AS "customer_id" FROM "__fragment_2" AS "c" LEFT JOIN "__fragment_1" AS "_u_0" ON "c"."customer_id" = _u_0._u_1 WHERE NOT _u_0._u_1 IS NULL
