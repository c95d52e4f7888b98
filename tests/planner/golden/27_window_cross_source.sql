-- shape: window function over a cross-source join stays in the merge
SELECT o.order_id, e.region, RANK() OVER (PARTITION BY e.region ORDER BY o.amount DESC) AS r FROM sales.orders o JOIN hr.employees e ON e.id = o.employee_id WHERE o.amount > 800
-- plan
fragment __fragment_1 @ sales_db: filter "o"."amount" > 800
  SELECT "o"."amount" AS "amount", "o"."employee_id" AS "employee_id", "o"."order_id" AS "order_id" FROM "orders" AS "o" WHERE "o"."amount" > 800
fragment __fragment_2 @ hr_db: scan
  SELECT "e"."id" AS "id", "e"."region" AS "region" FROM "employees" AS "e"
merge @ duckdb: merge of the fragments
  SELECT "o"."order_id" AS "order_id", "e"."region" AS "region", RANK() OVER (PARTITION BY "e"."region" ORDER BY "o"."amount" DESC) AS "r" FROM "__fragment_1" AS "o" CROSS JOIN "__fragment_2" AS "e" WHERE "e"."id" = "o"."employee_id"
