-- shape: a key join of files tables read by the merge where its SELECT reads no other table
SELECT a.sku, count(DISTINCT b.order_id) AS orders FROM sales.items a JOIN sales.items b ON b.item_id = a.item_id WHERE a.qty > 2 AND NOT b.order_id IN (SELECT o.order_id FROM sales.orders o WHERE o.status = 'cancelled') GROUP BY a.sku ORDER BY a.sku
-- plan
fragment __fragment_1 @ sales_db: whole query
  SELECT "o"."order_id" AS "order_id" FROM "orders" AS "o" WHERE "o"."status" = 'cancelled'
merge scan 1 @ lake: read by the merge itself
  READ_PARQUET('<mesh>/data/lake/items.parquet')
merge scan 2 @ lake: read by the merge itself
  READ_PARQUET('<mesh>/data/lake/items.parquet')
merge @ duckdb: merge of the fragments
  SELECT "a"."sku" AS "sku", COUNT(DISTINCT "b"."order_id") AS "orders" FROM READ_PARQUET('<mesh>/data/lake/items.parquet') AS "a" CROSS JOIN READ_PARQUET('<mesh>/data/lake/items.parquet') AS "b" WHERE "a"."qty" > 2 AND "a"."item_id" = "b"."item_id" AND NOT "b"."order_id" IN (SELECT * FROM __fragment_1) GROUP BY "a"."sku" ORDER BY "sku"
