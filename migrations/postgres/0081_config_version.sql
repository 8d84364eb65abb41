-- A number every write to the configuration tables changes (in the writing transaction), so
-- the periodic snapshot refresh of each instance reads one row instead of every provider, user
-- and key when nothing changed (with 10,000 users and 30,000 keys a full reload is a few
-- hundred milliseconds of work, every 5 seconds, on every instance).
CREATE TABLE config_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    v  BIGINT NOT NULL
);
INSERT INTO config_version (id, v) VALUES (1, 0);
CREATE FUNCTION bump_config_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE config_version SET v = v + 1 WHERE id = 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER providers_config_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON providers FOR EACH STATEMENT EXECUTE FUNCTION bump_config_version();
CREATE TRIGGER users_config_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON users FOR EACH STATEMENT EXECUTE FUNCTION bump_config_version();
CREATE TRIGGER api_keys_config_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON api_keys FOR EACH STATEMENT EXECUTE FUNCTION bump_config_version();
CREATE TRIGGER model_prices_config_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON model_prices FOR EACH STATEMENT EXECUTE FUNCTION bump_config_version();
CREATE TRIGGER system_settings_config_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON system_settings FOR EACH STATEMENT EXECUTE FUNCTION bump_config_version();
CREATE TRIGGER error_rules_config_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON error_rules FOR EACH STATEMENT EXECUTE FUNCTION bump_config_version();
CREATE TRIGGER sensitive_words_config_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON sensitive_words FOR EACH STATEMENT EXECUTE FUNCTION bump_config_version();
