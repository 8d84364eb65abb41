#!/usr/bin/env python3
"""Config for the console benchmark: 1,000 providers, 10,000 users and 30,000 keys as a
`cch import` file, matching the ids the SQL log generators write (users 1..10,000, keys
3·user-2..3·user, providers 1..200 in 50 groups of 4; providers 201..1,000 carry no traffic).

    python3 benches/stats_sql/entities.py > entities.json
    DSN=… cch migrate && DSN=… cch import entities.json     # on an empty database, before the logs

Import into an empty database so ids come out in file order. A tenth of the users and
providers carry limits of every kind, so the pages show usage bars; keys are hashes of
`cch_bench_<id>`, so no plaintext key is in the file.
"""
import hashlib
import json
import sys

USERS, KEYS_PER_USER, PROVIDERS, GROUPS = 10_000, 3, 1_000, 50
STAMP = "2026-11-01T00:00:00Z"


def limits(with_values: bool) -> dict:
    v = with_values
    return {
        "rpm": 600 if v else None,
        "limit_5h_usd": "50" if v else None,
        "limit_daily_usd": "100" if v else None,
        "daily_reset_mode": "fixed",
        "daily_reset_time": "00:00",
        "limit_weekly_usd": "500" if v else None,
        "limit_monthly_usd": "2000" if v else None,
        "limit_total_usd": None,
        "limit_concurrent_sessions": 20 if v else None,
    }


def provider(i: int) -> dict:
    group = (i - 1) // 4 % GROUPS + 1 if i <= 200 else (i % GROUPS) + 1
    return {
        "id": i,
        "name": f"provider-{i:04d}",
        "description": "",
        "provider_type": ["claude", "codex", "openai-compatible", "gemini"][i % 4]
        if i > 200
        else "claude",
        "base_url": f"http://127.0.0.1:{20000 + i}",
        "api_key": f"sk-bench-{i}",
        "enabled": i % 10 != 0,
        "priority": i % 3,
        "weight": 1 + i % 5,
        "cost_multiplier": "1",
        "group_tag": f"g{group}",
        "allowed_models": [],
        "model_redirects": {},
        "extra_client_formats": [],
        "proxy_url": None,
        "proxy_fallback_to_direct": False,
        "limits": limits(i % 10 == 1),
        "timeouts": {
            "first_byte_timeout_ms": 30000,
            "idle_timeout_ms": 60000,
            "request_timeout_ms": 120000,
        },
        "breaker": {
            "failure_threshold": 5,
            "open_duration_ms": 1800000,
            "half_open_success_threshold": 2,
        },
        "max_retry_attempts": None,
        "shaping": {
            "custom_headers": {},
            "anthropic_beta": "passthrough",
            "anthropic_beta_list": [],
        },
        "created_at": STAMP,
        "updated_at": STAMP,
    }


def key(user: int, n: int) -> dict:
    kid = user * KEYS_PER_USER - (KEYS_PER_USER - 1) + n
    secret = f"cch_bench_{kid}"
    return {
        "id": kid,
        "user_id": user,
        "name": f"key-{kid}",
        "key_hash": hashlib.sha256(secret.encode()).hexdigest(),
        "key_last4": secret[-4:],
        "enabled": True,
        "expires_at": None,
        "limits": limits(kid % 10 == 1),
        "created_at": STAMP,
        "updated_at": STAMP,
    }


def user(i: int) -> dict:
    return {
        "user": {
            "id": i,
            "name": f"user-{i:05d}",
            "role": "admin" if i == 1 else "user",
            "provider_group": f"g{i % GROUPS + 1}",
            "limits": limits(i % 10 == 1),
            "enabled": True,
            "expires_at": None,
            "note": "",
            "created_at": STAMP,
            "updated_at": STAMP,
        },
        "keys": [key(i, n) for n in range(KEYS_PER_USER)],
    }


json.dump(
    {
        "format": "cch-config",
        "version": 1,
        "providers": [provider(i) for i in range(1, PROVIDERS + 1)],
        "users": [user(i) for i in range(1, USERS + 1)],
        "prices": [],
        "error_rules": [],
        "sensitive_words": [],
        "settings": [],
    },
    sys.stdout,
)
