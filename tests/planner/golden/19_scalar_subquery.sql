-- shape: scalar subquery from another source
SELECT order_id, amount FROM sales.orders WHERE amount > (SELECT AVG(price) * 100 FROM sales.items)
-- plan
fragment __fragment_1 @ lake: whole query
  SELECT AVG("items"."price") * 100 AS "_col_0" FROM READ_PARQUET('<mesh>/data/lake/items.parquet') AS "items"
fragment __fragment_2 @ sales_db: scan
  SELECT "orders"."amount" AS "amount", "orders"."order_id" AS "order_id" FROM "orders" AS "orders"
merge @ duckdb: merge of the fragments
  SELECT "orders"."order_id" AS "order_id", "orders"."amount" AS "amount" FROM "__fragment_2" AS "orders" CROSS JOIN "__fragment_1" AS "_u_0" WHERE "orders"."amount" > _u_0._col_0
