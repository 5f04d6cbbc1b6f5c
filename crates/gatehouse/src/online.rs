//! Gathering facts for the online checks from GitHub. (Being built.)

use gatehouse_core::check::OnlineFacts;

pub fn gather(
    _token: &str,
    _org: &str,
    _suffix: &str,
    _projects: &[String],
    _logins: &[String],
) -> anyhow::Result<OnlineFacts> {
    anyhow::bail!("online checks are not built yet")
}
