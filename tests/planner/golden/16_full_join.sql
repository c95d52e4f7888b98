-- shape: FULL JOIN: no predicate moves below the join
SELECT c.customer_id, k.contact_id FROM sales.customers c FULL JOIN crm.contacts k ON k.customer_id = c.customer_id WHERE c.country = 'US' OR k.email IS NULL
-- plan
fragment __fragment_1 @ sales_db: scan
  SELECT "c"."country" AS "country", "c"."customer_id" AS "customer_id" FROM "customers" AS "c"
fragment __fragment_2 @ crm_db: scan
  SELECT "k"."contact_id" AS "contact_id", "k"."customer_id" AS "customer_id", "k"."email" AS "email" FROM "public"."contacts" AS "k"
merge @ duckdb: merge of the fragments
  SELECT "c"."customer_id" AS "customer_id", "k"."contact_id" AS "contact_id" FROM "__fragment_1" AS "c" FULL JOIN "__fragment_2" AS "k" ON "c"."customer_id" = "k"."customer_id" WHERE "c"."country" = 'US' OR "k"."email" IS NULL
