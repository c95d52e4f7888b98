-- shape: top-N on a text column whose PostgreSQL collation (ICU en-US) differs: pushed only with COLLATE "C"
SELECT name FROM crm.contacts ORDER BY name LIMIT 7
-- plan
fragment __fragment_1 @ crm_db: whole query
  SELECT "contacts"."name" COLLATE "C" AS "name" FROM "public"."contacts" AS "contacts" ORDER BY "name" LIMIT 7
