-- shape: UNION inside one source pushed whole
SELECT customer_id FROM sales.orders WHERE status = 'open' UNION SELECT customer_id FROM sales.customers WHERE segment = 'smb'
-- plan
fragment __fragment_1 @ sales_db: whole query
  SELECT "orders"."customer_id" AS "customer_id" FROM "orders" AS "orders" WHERE "orders"."status" = 'open'
fragment __fragment_2 @ sales_db: whole query
  SELECT "customers"."customer_id" AS "customer_id" FROM "customers" AS "customers" WHERE "customers"."segment" = 'smb'
merge @ duckdb: the source cannot run this (sub)query whole; it was split
  SELECT * FROM __fragment_1 UNION SELECT * FROM __fragment_2
