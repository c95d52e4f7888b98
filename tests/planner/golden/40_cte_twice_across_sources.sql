-- shape: a CTE read twice in a query split over sources is one fragment, materialized by the merge
WITH t AS (SELECT o.customer_id AS customer_id, sum(o.amount) AS total FROM sales.orders o GROUP BY o.customer_id) SELECT k.contact_id, t.total FROM crm.contacts k JOIN t ON t.customer_id = k.customer_id WHERE t.total = (SELECT max(t2.total) FROM t t2) ORDER BY k.contact_id
-- plan
fragment __fragment_1 @ sales_db: whole query
  SELECT "o"."customer_id" AS "customer_id", SUM("o"."amount") AS "total" FROM "orders" AS "o" GROUP BY "o"."customer_id"
fragment __fragment_2 @ crm_db: scan
  SELECT "k"."contact_id" AS "contact_id", "k"."customer_id" AS "customer_id" FROM "public"."contacts" AS "k"
merge @ duckdb: merge of the fragments
  WITH "t$cte1" AS MATERIALIZED (SELECT * FROM __fragment_1) SELECT "k"."contact_id" AS "contact_id", "t"."total" AS "total" FROM "__fragment_2" AS "k" CROSS JOIN "t$cte1" AS "t" WHERE "k"."customer_id" = "t"."customer_id" AND "t"."total" = (SELECT MAX("t2"."total") AS "_col_0" FROM "t$cte1" AS "t2") ORDER BY "k"."contact_id"
