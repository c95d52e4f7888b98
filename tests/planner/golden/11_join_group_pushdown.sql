-- shape: same-source FK->PK join pushed as one fragment inside a cross-source query
SELECT c.segment, SUM(i.qty) AS qty FROM sales.orders o JOIN sales.customers c ON c.customer_id = o.customer_id JOIN sales.items i ON i.order_id = o.order_id WHERE c.country = 'DE' GROUP BY c.segment
-- plan
fragment __fragment_1 @ sales_db: join of c, o
  SELECT "c"."segment" AS "c__segment", "o"."order_id" AS "o__order_id" FROM "orders" AS "o" CROSS JOIN "customers" AS "c" WHERE "c"."country" = 'DE' AND "c"."customer_id" = "o"."customer_id"
fragment __fragment_2 @ lake: dynamic filter: "i"."order_id" IN (keys of __fragment_1.o__order_id)
  SELECT "i"."order_id" AS "order_id", "i"."qty" AS "qty" FROM READ_PARQUET('<mesh>/data/lake/items.parquet') AS "i"
merge @ duckdb: merge of the fragments
  SELECT "__fragment_1"."c__segment" AS "segment", SUM("i"."qty") AS "qty" FROM "__fragment_1" AS "__fragment_1" CROSS JOIN "__fragment_2" AS "i" WHERE "i"."order_id" = "__fragment_1"."o__order_id" GROUP BY "__fragment_1"."c__segment"
