-- Thinking-signature rectifier (issue 12 item 3): provider refusals of a request's thinking
-- blocks are cured by stripping them and retrying once on the same provider. The messages are
-- error rules of class `rectify_thinking_signature`, so admins can add more. They must be
-- matched before the older thinking presets (client errors) and the 400 "field required"
-- preset, which share words with them: those rows move behind the new ones (same content,
-- admin edits kept, new ids), keeping the order `domain::failure::builtin_error_rules` lists.
INSERT INTO error_rules (pattern, match_kind, status, class, is_preset, priority) VALUES
    ('invalid `signature` in `thinking` block', 'contains', 400, 'rectify_thinking_signature', TRUE, 100),
    ('in `redacted_thinking` block', 'contains', 400, 'rectify_thinking_signature', TRUE, 100),
    ('signature: field required', 'contains', 400, 'rectify_thinking_signature', TRUE, 100),
    ('blocks in the latest assistant message cannot be modified', 'contains', 400, 'rectify_thinking_signature', TRUE, 100),
    ('must start with a thinking block', 'contains', 400, 'rectify_thinking_signature', TRUE, 100);

INSERT INTO error_rules (pattern, match_kind, status, class, override_status, override_message,
                         description, enabled, is_preset, priority)
SELECT pattern, match_kind, status, class, override_status, override_message, description,
       enabled, is_preset, priority
FROM error_rules
WHERE is_preset = TRUE AND class <> 'rectify_thinking_signature'
  AND (pattern IN ('expected `thinking`', '`thinking` block', 'thinking blocks', 'redacted_thinking') OR (pattern = 'field required' AND status = 400))
ORDER BY CASE WHEN pattern = 'field required' THEN 1 ELSE 0 END, id;

DELETE FROM error_rules
WHERE is_preset = TRUE AND class <> 'rectify_thinking_signature'
  AND (pattern IN ('expected `thinking`', '`thinking` block', 'thinking blocks', 'redacted_thinking') OR (pattern = 'field required' AND status = 400))
  AND id < (SELECT MIN(id) FROM error_rules WHERE class = 'rectify_thinking_signature');
