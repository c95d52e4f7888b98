-- shape: integer division is not pushed where semantics differ
SELECT e.id FROM hr.employees e JOIN sales.orders o ON o.employee_id = e.id WHERE e.id / 2 > 7 GROUP BY e.id
-- plan
fragment __fragment_1 @ hr_db: scan
  SELECT "e"."id" AS "id" FROM "employees" AS "e"
fragment __fragment_2 @ sales_db: scan
  SELECT "o"."employee_id" AS "employee_id" FROM "orders" AS "o"
merge @ duckdb: filter the source cannot evaluate: "e"."id" / 2 > 7
  SELECT "e"."id" AS "id" FROM "__fragment_1" AS "e" CROSS JOIN "__fragment_2" AS "o" WHERE "e"."id" / 2 > 7 AND "e"."id" = "o"."employee_id" GROUP BY "e"."id"
