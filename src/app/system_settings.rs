//! The system settings editable at run time (`GET/PATCH /api/v1/settings`): time zone override,
//! log retention and its daily time, site title. Stored in `system_settings`, read from the
//! config snapshot, so a change made on one instance reaches the others with the snapshot
//! refresh (`CONFIG_REFRESH_INTERVAL_MS`).

use std::sync::Arc;

use chrono_tz::Tz;

use crate::domain::settings::{SettingsPatch, SystemConfig};
use crate::ports::clock::Clock;
use crate::ports::store::ConfigStore;

use super::admin::{AdminError, AdminResult};
use super::scheduler::ZoneSource;
use super::snapshot::SnapshotHolder;

/// Reads and changes the system settings.
pub struct SystemSettings {
    snapshot: Arc<SnapshotHolder>,
    store: Arc<dyn ConfigStore>,
    clock: Arc<dyn Clock>,
    env_zone: Tz,
}

impl SystemSettings {
    /// `env_zone` is the `TZ` variable's zone, used while no override is set.
    pub fn new(
        snapshot: Arc<SnapshotHolder>,
        store: Arc<dyn ConfigStore>,
        clock: Arc<dyn Clock>,
        env_zone: Tz,
    ) -> Self {
        Self {
            snapshot,
            store,
            clock,
            env_zone,
        }
    }

    /// The settings in the current snapshot.
    pub fn current(&self) -> SystemConfig {
        SystemConfig::from_map(&self.snapshot.get().settings)
    }

    /// The zone for periods, schedules and display: the override, else `TZ`.
    pub fn effective_zone(&self) -> Tz {
        self.current().effective_zone(self.env_zone)
    }

    /// The `TZ` variable's zone.
    pub fn env_zone(&self) -> Tz {
        self.env_zone
    }

    /// The effective zone as a source the scheduler reads at every check.
    pub fn zone_source(self: &Arc<Self>) -> ZoneSource {
        let me = Arc::clone(self);
        Arc::new(move || me.effective_zone())
    }

    /// Validates and stores a partial update, then refreshes this instance's snapshot; other
    /// instances see it at their next refresh.
    pub async fn patch(&self, patch: &SettingsPatch) -> AdminResult<SystemConfig> {
        let change = patch.validate()?;
        for row in &change.put {
            self.store
                .put_setting(row)
                .await
                .map_err(|e| AdminError::Unavailable(e.to_string()))?;
        }
        self.snapshot
            .reload(self.clock.now())
            .await
            .map_err(|e| AdminError::Unavailable(e.to_string()))?;
        Ok(self.current())
    }
}
