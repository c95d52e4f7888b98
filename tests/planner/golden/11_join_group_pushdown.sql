-- shape: same-source FK->PK join pushed as one fragment inside a cross-source query
SELECT c.segment, SUM(i.qty) AS qty FROM sales.orders o JOIN sales.customers c ON c.customer_id = o.customer_id JOIN sales.items i ON i.order_id = o.order_id WHERE c.country = 'DE' GROUP BY c.segment
-- plan
fragment __fragment_1 @ sales_db: join of c, o
  SELECT "c"."segment" AS "c__segment", "o"."order_id" AS "o__order_id" FROM "orders" AS "o" CROSS JOIN "customers" AS "c" WHERE "c"."country" = 'DE' AND "c"."customer_id" = "o"."customer_id"
merge scan 1 @ lake: read by the merge itself
  READ_PARQUET('<mesh>/data/lake/items.parquet')
merge @ duckdb: merge of the fragments
  SELECT "__fragment_1"."c__segment" AS "segment", SUM("i"."qty") AS "qty" FROM "__fragment_1" AS "__fragment_1" CROSS JOIN READ_PARQUET('<mesh>/data/lake/items.parquet') AS "i" WHERE "i"."order_id" = "__fragment_1"."o__order_id" GROUP BY "__fragment_1"."c__segment"
