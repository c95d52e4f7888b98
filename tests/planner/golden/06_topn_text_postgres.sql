-- shape: top-N on text not pushed where PostgreSQL's collation differs
SELECT name FROM crm.contacts ORDER BY name LIMIT 7
-- plan
fragment __fragment_1 @ crm_db: whole query
  SELECT "contacts"."name" AS "name" FROM "public"."contacts" AS "contacts" ORDER BY "name" LIMIT 7
