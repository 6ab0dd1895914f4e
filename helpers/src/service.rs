//! The service the daemon's helpers run.
//!
//! The crypto requests (`ike::crypto::CryptoRequest`, `CryptoResult`, `SecretStore`,
//! `serve`) are being written now; until they exist the daemon's helpers run `Standby`,
//! which only answers `Ping`, so that the process model (N unprivileged helpers, secrets
//! sent at start, replacement on death) runs end to end. Wiring the crypto in is:
//!
//! ```text
//! pub struct Crypto { store: Store /* impl ike::crypto::SecretStore */ }
//! impl HelperService for Crypto {
//!     type Secrets = Store; type Request = CryptoRequest; type Response = CryptoResult;
//!     fn new(store: Store) -> Self { Crypto { store } }
//!     fn serve(&mut self, req: CryptoRequest) -> CryptoResult { ike::crypto::serve(&req, &self.store) }
//! }
//! ```
//! and naming `Crypto` instead of `Standby` in `privsep`'s child and helper roles.

use crate::pool::HelperService;
use serde::{Deserialize, Serialize};

/// The helper service of the daemon until the crypto service exists.
pub struct Standby;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StandbyRequest {
    Ping(u64),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StandbyResponse {
    Pong(u64),
}

impl HelperService for Standby {
    type Secrets = ();
    type Request = StandbyRequest;
    type Response = StandbyResponse;
    fn new(_: ()) -> Self {
        Standby
    }
    fn serve(&mut self, req: StandbyRequest) -> StandbyResponse {
        match req {
            StandbyRequest::Ping(n) => StandbyResponse::Pong(n),
        }
    }
}
