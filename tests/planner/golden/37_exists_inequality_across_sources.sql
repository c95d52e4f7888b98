-- shape: EXISTS across sources correlated by an inequality stays as written for the merge
SELECT c.customer_id FROM sales.customers c WHERE EXISTS (SELECT 1 FROM crm.contacts k WHERE k.customer_id = c.customer_id AND k.contact_id <> c.customer_id) ORDER BY c.customer_id
-- plan
fragment __fragment_1 @ crm_db: scan
  SELECT "k"."contact_id" AS "contact_id", "k"."customer_id" AS "customer_id" FROM "public"."contacts" AS "k"
fragment __fragment_2 @ sales_db: scan
  SELECT "c"."customer_id" AS "customer_id" FROM "customers" AS "c"
merge @ duckdb: merge of the fragments
  SELECT "c"."customer_id" AS "customer_id" FROM "__fragment_2" AS "c" WHERE EXISTS(SELECT 1 AS "1" FROM "__fragment_1" AS "k" WHERE "c"."customer_id" <> "k"."contact_id" AND "c"."customer_id" = "k"."customer_id") ORDER BY "c"."customer_id"
