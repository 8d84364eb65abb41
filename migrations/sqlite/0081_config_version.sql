-- A number every write to the configuration tables changes (in the writing transaction), so
-- the periodic snapshot refresh of each instance reads one row instead of every provider, user
-- and key when nothing changed (with 10,000 users and 30,000 keys a full reload is a few
-- hundred milliseconds of work, every 5 seconds, on every instance).
CREATE TABLE config_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    v  INTEGER NOT NULL
);
INSERT INTO config_version (id, v) VALUES (1, 0);
CREATE TRIGGER providers_insert_config_version AFTER INSERT ON providers BEGIN UPDATE config_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER providers_update_config_version AFTER UPDATE ON providers BEGIN UPDATE config_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER providers_delete_config_version AFTER DELETE ON providers BEGIN UPDATE config_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER users_insert_config_version AFTER INSERT ON users BEGIN UPDATE config_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER users_update_config_version AFTER UPDATE ON users BEGIN UPDATE config_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER users_delete_config_version AFTER DELETE ON users BEGIN UPDATE config_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER api_keys_insert_config_version AFTER INSERT ON api_keys BEGIN UPDATE config_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER api_keys_update_config_version AFTER UPDATE ON api_keys BEGIN UPDATE config_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER api_keys_delete_config_version AFTER DELETE ON api_keys BEGIN UPDATE config_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER model_prices_insert_config_version AFTER INSERT ON model_prices BEGIN UPDATE config_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER model_prices_update_config_version AFTER UPDATE ON model_prices BEGIN UPDATE config_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER model_prices_delete_config_version AFTER DELETE ON model_prices BEGIN UPDATE config_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER system_settings_insert_config_version AFTER INSERT ON system_settings BEGIN UPDATE config_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER system_settings_update_config_version AFTER UPDATE ON system_settings BEGIN UPDATE config_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER system_settings_delete_config_version AFTER DELETE ON system_settings BEGIN UPDATE config_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER error_rules_insert_config_version AFTER INSERT ON error_rules BEGIN UPDATE config_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER error_rules_update_config_version AFTER UPDATE ON error_rules BEGIN UPDATE config_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER error_rules_delete_config_version AFTER DELETE ON error_rules BEGIN UPDATE config_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER sensitive_words_insert_config_version AFTER INSERT ON sensitive_words BEGIN UPDATE config_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER sensitive_words_update_config_version AFTER UPDATE ON sensitive_words BEGIN UPDATE config_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER sensitive_words_delete_config_version AFTER DELETE ON sensitive_words BEGIN UPDATE config_version SET v = v + 1 WHERE id = 1; END;
