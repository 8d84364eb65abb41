//! The Lua scripts that make multi-step counter operations atomic in Redis, loaded once.

use ::redis::Script;

/// Source of the session touch (also kept by the write batcher, which loads it after a
/// `NOSCRIPT`).
pub(super) const TOUCH_SESSION_LUA: &str = include_str!("lua/touch_session.lua");

/// Every script the adapter runs; `Script` keeps the SHA so calls use EVALSHA.
pub(super) struct Scripts {
    /// INCRBY + TTL on create.
    pub(super) incr: Script,
    /// ZADD + prune + sum.
    pub(super) rolling_add: Script,
    /// Sum over the window.
    pub(super) rolling_sum: Script,
    /// GET + compare + SET.
    pub(super) compare_and_swap: Script,
    /// Prune idle + check limit + ZADD.
    pub(super) acquire_slot: Script,
    /// Session binding + listing entry + index.
    pub(super) touch_session: Script,
}

impl Scripts {
    /// Compiles (hashes) the scripts.
    pub(super) fn load() -> Self {
        Self {
            incr: Script::new(include_str!("lua/incr.lua")),
            rolling_add: Script::new(include_str!("lua/rolling_add.lua")),
            rolling_sum: Script::new(include_str!("lua/rolling_sum.lua")),
            compare_and_swap: Script::new(include_str!("lua/compare_and_swap.lua")),
            acquire_slot: Script::new(include_str!("lua/acquire_slot.lua")),
            touch_session: Script::new(TOUCH_SESSION_LUA),
        }
    }
}
