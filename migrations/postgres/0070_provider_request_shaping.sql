-- Per-provider request shaping (issue 12 item 8): custom headers and the anthropic-beta
-- policy, as one JSON object ({"custom_headers": {…}, "anthropic_beta": "passthrough",
-- "anthropic_beta_list": […]}); '{}' reads as no headers and passthrough.
ALTER TABLE providers ADD COLUMN request_shaping JSONB NOT NULL DEFAULT '{}'::jsonb;
