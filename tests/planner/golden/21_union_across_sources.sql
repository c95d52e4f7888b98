-- shape: UNION ALL across sources
SELECT customer_id FROM sales.customers WHERE country = 'JP' UNION ALL SELECT customer_id FROM crm.contacts WHERE contact_id < 10
-- plan
fragment __fragment_1 @ sales_db: whole query
  SELECT "customers"."customer_id" AS "customer_id" FROM "customers" AS "customers" WHERE "customers"."country" = 'JP'
fragment __fragment_2 @ crm_db: whole query
  SELECT "contacts"."customer_id" AS "customer_id" FROM "public"."contacts" AS "contacts" WHERE "contacts"."contact_id" < 10
merge @ duckdb: merge of the fragments
  SELECT * FROM __fragment_1 UNION ALL SELECT * FROM __fragment_2
