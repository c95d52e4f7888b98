-- shape: correlated scalar subquery inside one DuckDB source stays as written and goes down whole
SELECT o.order_id FROM sales.orders o WHERE o.amount > (SELECT AVG(o2.amount) FROM sales.orders o2 WHERE o2.customer_id = o.customer_id) ORDER BY o.order_id
-- plan
fragment __fragment_1 @ sales_db: whole query
  SELECT "o"."order_id" AS "order_id" FROM "orders" AS "o" WHERE "o"."amount" > (SELECT AVG("o2"."amount") AS "_col_0" FROM "orders" AS "o2" WHERE "o"."customer_id" = "o2"."customer_id") ORDER BY "o"."order_id"
