-- shape: EXISTS over a table the merge reads itself stays as written (the merge semi-joins it)
SELECT o.order_id FROM sales.orders o WHERE o.amount > 500 AND EXISTS (SELECT 1 FROM sales.items i WHERE i.order_id = o.order_id AND i.qty > 5) ORDER BY o.order_id
-- plan
fragment __fragment_1 @ sales_db: filter "o"."amount" > 500
  SELECT "o"."order_id" AS "order_id" FROM "orders" AS "o" WHERE "o"."amount" > 500
merge scan 1 @ lake: read by the merge itself
  READ_PARQUET('<mesh>/data/lake/items.parquet')
merge @ duckdb: merge of the fragments
  SELECT "o"."order_id" AS "order_id" FROM "__fragment_1" AS "o" WHERE EXISTS(SELECT 1 AS "1" FROM READ_PARQUET('<mesh>/data/lake/items.parquet') AS "i" WHERE "i"."order_id" = "o"."order_id" AND "i"."qty" > 5) ORDER BY "o"."order_id"
