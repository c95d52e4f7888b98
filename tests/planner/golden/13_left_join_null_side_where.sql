-- shape: LEFT JOIN: WHERE on the null-supplying side stays above the join
SELECT o.order_id, e.region FROM sales.orders o LEFT JOIN hr.employees e ON e.id = o.employee_id WHERE e.region IS NULL
-- plan
fragment __fragment_1 @ sales_db: scan
  SELECT "o"."employee_id" AS "employee_id", "o"."order_id" AS "order_id" FROM "orders" AS "o"
fragment __fragment_2 @ hr_db: scan
  SELECT "e"."id" AS "id", "e"."region" AS "region" FROM "employees" AS "e"
merge @ duckdb: filter above a null-supplying outer-join side: "e"."region" IS NULL
  SELECT "o"."order_id" AS "order_id", "e"."region" AS "region" FROM "__fragment_1" AS "o" LEFT JOIN "__fragment_2" AS "e" ON "e"."id" = "o"."employee_id" WHERE "e"."region" IS NULL
