-- Staff change prices from the back office (issue 14): every change is a new row, nothing is
-- edited in place, and the audit log says who, when, why, before and after.

-- Price schedule versions. Several may share a date (a correction published for the same day):
-- the version in force is the latest whose date has come, the last published winning a tie.
ALTER TABLE price_schedules DROP CONSTRAINT price_schedules_effective_from_key;
ALTER TABLE price_schedules ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX price_schedules_by_date ON price_schedules (effective_from, id);

-- Versions, their rules and packs are append-only: a trigger refuses UPDATE, DELETE and TRUNCATE.
CREATE FUNCTION catalog_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only (% refused): publish a new version', TG_TABLE_NAME, TG_OP;
END $$;

CREATE TRIGGER price_schedules_append_only BEFORE UPDATE OR DELETE ON price_schedules
    FOR EACH ROW EXECUTE FUNCTION catalog_append_only();
CREATE TRIGGER price_schedules_no_truncate BEFORE TRUNCATE ON price_schedules
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_append_only();
CREATE TRIGGER price_rules_append_only BEFORE UPDATE OR DELETE ON price_rules
    FOR EACH ROW EXECUTE FUNCTION catalog_append_only();
CREATE TRIGGER price_rules_no_truncate BEFORE TRUNCATE ON price_rules
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_append_only();

-- Packs keep their id (URLs, guides' shortcodes and orders name it); what a pack is sold as is
-- its latest version: name, credits, price, restriction, and whether it is still on sale (a
-- retired pack has a last version with `on_sale` false). Orders copy the label, price and
-- credits they were made with, so a new version changes nothing already ordered or invoiced,
-- and credits already granted keep their buckets.
CREATE TABLE pack_versions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pack_id       text NOT NULL REFERENCES packs,
    name          text NOT NULL CHECK (length(trim(name)) BETWEEN 1 AND 100),
    credits       bigint NOT NULL CHECK (credits > 0),
    price_cents   bigint NOT NULL CHECK (price_cents > 0),
    restricted_to text REFERENCES creation_types,
    on_sale       boolean NOT NULL,
    created_at    timestamptz NOT NULL
);
CREATE INDEX pack_versions_latest ON pack_versions (pack_id, id DESC);

INSERT INTO pack_versions (pack_id, name, credits, price_cents, restricted_to, on_sale, created_at)
SELECT id, name, credits, price_cents, restricted_to, active, now() FROM packs ORDER BY position;

ALTER TABLE packs
    DROP COLUMN name,
    DROP COLUMN credits,
    DROP COLUMN price_cents,
    DROP COLUMN restricted_to,
    DROP COLUMN active;

CREATE TRIGGER packs_append_only BEFORE UPDATE OR DELETE ON packs
    FOR EACH ROW EXECUTE FUNCTION catalog_append_only();
CREATE TRIGGER packs_no_truncate BEFORE TRUNCATE ON packs
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_append_only();
CREATE TRIGGER pack_versions_append_only BEFORE UPDATE OR DELETE ON pack_versions
    FOR EACH ROW EXECUTE FUNCTION catalog_append_only();
CREATE TRIGGER pack_versions_no_truncate BEFORE TRUNCATE ON pack_versions
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_append_only();
