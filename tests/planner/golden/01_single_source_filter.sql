-- shape: single-source query pushed whole (DuckDB)
SELECT order_id, amount FROM sales.orders WHERE status = 'open' AND amount > 500
-- plan
fragment __fragment_1 @ sales_db: whole query
  SELECT "orders"."order_id" AS "order_id", "orders"."amount" AS "amount" FROM "orders" AS "orders" WHERE "orders"."amount" > 500 AND "orders"."status" = 'open'
