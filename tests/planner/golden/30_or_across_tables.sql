-- shape: OR across tables stays in the merge
SELECT o.order_id FROM sales.orders o JOIN hr.employees e ON e.id = o.employee_id WHERE o.amount > 990 OR e.region = 'APAC'
-- plan
fragment __fragment_1 @ sales_db: scan
  SELECT "o"."amount" AS "amount", "o"."employee_id" AS "employee_id", "o"."order_id" AS "order_id" FROM "orders" AS "o"
fragment __fragment_2 @ hr_db: scan
  SELECT "e"."id" AS "id", "e"."region" AS "region" FROM "employees" AS "e"
merge @ duckdb: merge of the fragments
  SELECT "o"."order_id" AS "order_id" FROM "__fragment_1" AS "o" CROSS JOIN "__fragment_2" AS "e" WHERE "e"."id" = "o"."employee_id" AND ("e"."region" = 'APAC' OR "o"."amount" > 990)
