-- shape: UNION inside one source pushed whole
SELECT customer_id FROM sales.orders WHERE status = 'open' UNION SELECT customer_id FROM sales.customers WHERE segment = 'smb'
-- plan
fragment __fragment_1 @ sales_db: whole query
  SELECT * FROM (SELECT "orders"."customer_id" AS "customer_id" FROM "orders" AS "orders" WHERE "orders"."status" = 'open' UNION SELECT "customers"."customer_id" AS "customer_id" FROM "customers" AS "customers" WHERE "customers"."segment" = 'smb') AS "q"
