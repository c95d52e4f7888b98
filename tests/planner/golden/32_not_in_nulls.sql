-- shape: NOT IN with NULLs on the other source
SELECT customer_id FROM sales.customers WHERE customer_id NOT IN (SELECT customer_id FROM crm.contacts)
-- plan
fragment __fragment_1 @ crm_db: whole query
  SELECT "contacts"."customer_id" AS "customer_id" FROM "public"."contacts" AS "contacts"
fragment __fragment_2 @ sales_db: scan
  SELECT "customers"."customer_id" AS "customer_id" FROM "customers" AS "customers"
merge @ duckdb: merge of the fragments
  SELECT "customers"."customer_id" AS "customer_id" FROM "__fragment_2" AS "customers" WHERE NOT "customers"."customer_id" IN (SELECT * FROM __fragment_1)
