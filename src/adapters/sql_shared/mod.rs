//! SQL shared word for word by the SQLite and PostgreSQL adapters, for tables designed to need
//! no dialect differences (integer times, `$n` placeholders, which SQLite also accepts). Each
//! adapter instantiates the port implementations with its own pool and error mapping, so the
//! logic lives once.

pub(crate) mod job_leases;
pub(crate) mod limit_refusals;
pub(crate) mod statement_sizes;
