//! Gathering facts for the online checks from GitHub: the I/O half of `check --online`.
//! Judging the facts is pure and lives in `gatehouse_core::check::check_online`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::Context;
use gatehouse_core::check::{OnlineFacts, RepoFact, UserFact};
use gatehouse_core::names::login_key;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use gatehouse_github::{self as github, GitHub, Secret, Settings};

/// Requests in flight at once: fast enough for thousands of projects, gentle enough not to
/// trip GitHub's secondary rate limits on concurrent requests.
const CONCURRENCY: usize = 8;
/// After this many questions in a row found GitHub unreachable or failing, the rest are not
/// asked: each would spend its retries the same way, which takes hours on a large repository.
const GIVE_UP_AFTER: u32 = 3;

/// Asks GitHub about each project's repository (`{org}/{project}{suffix}`) and each login.
///
/// A question GitHub could not answer becomes an `Unknown` fact (reported as a warning), so
/// one bad answer does not hide the others; a rejected token fails the whole run, since every
/// other answer would be a refusal too.
pub fn gather(
    token: &str,
    org: &str,
    suffix: &str,
    projects: &[String],
    logins: &[String],
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<OnlineFacts> {
    let github = GitHub::new(Secret::new(token), Settings::from_env()?)?;
    let asker = Arc::new(Asker {
        github,
        limit: Semaphore::new(CONCURRENCY),
        failures_in_a_row: AtomicU32::new(0),
    });
    rt.block_on(ask_all(asker, org, suffix, projects, logins))
}

enum Answer {
    Repo(String, RepoFact),
    User(String, UserFact),
}

async fn ask_all(
    asker: Arc<Asker>,
    org: &str,
    suffix: &str,
    projects: &[String],
    logins: &[String],
) -> anyhow::Result<OnlineFacts> {
    let mut tasks = JoinSet::new();
    for project in projects {
        let (asker, project) = (asker.clone(), project.clone());
        let (org, repo) = (org.to_string(), format!("{project}{suffix}"));
        tasks.spawn(async move {
            let fact = match asker.ask(asker.github.get_repo(&org, &repo)).await? {
                Asked::Found(info) => RepoFact::Exists {
                    archived: info.archived,
                },
                Asked::Missing => RepoFact::Missing,
                Asked::Unknown(why) => RepoFact::Unknown(why),
            };
            Ok::<_, github::Error>(Answer::Repo(project, fact))
        });
    }
    for login in logins {
        let (asker, login) = (asker.clone(), login.clone());
        tasks.spawn(async move {
            let fact = match asker.ask(asker.github.get_user(&login)).await? {
                Asked::Found(id) => UserFact::Id(id),
                Asked::Missing => UserFact::Missing,
                Asked::Unknown(why) => UserFact::Unknown(why),
            };
            Ok(Answer::User(login, fact))
        });
    }

    let mut facts = OnlineFacts::default();
    while let Some(joined) = tasks.join_next().await {
        // `?` drops `tasks`, which cancels the questions still open.
        match joined.context("an online check stopped unexpectedly")?? {
            Answer::Repo(project, fact) => {
                facts.repos.insert(project, fact);
            }
            Answer::User(login, fact) => {
                facts.users.insert(login_key(&login), fact);
            }
        }
    }
    Ok(facts)
}

enum Asked<T> {
    Found(T),
    Missing,
    Unknown(String),
}

/// Asks one question at a time per permit and keeps the run's tally of failures.
struct Asker {
    github: GitHub,
    limit: Semaphore,
    failures_in_a_row: AtomicU32,
}

impl Asker {
    /// The answer, or why there is none; `Err` only when the whole run must stop.
    async fn ask<T>(
        &self,
        question: impl Future<Output = Result<Option<T>, github::Error>>,
    ) -> Result<Asked<T>, github::Error> {
        let _permit = self.limit.acquire().await;
        if self.failures_in_a_row.load(Ordering::Relaxed) >= GIVE_UP_AFTER {
            return Ok(Asked::Unknown(
                "not asked: GitHub failed on the questions before this one".to_string(),
            ));
        }
        match question.await {
            Ok(answer) => {
                self.failures_in_a_row.store(0, Ordering::Relaxed);
                Ok(answer.map_or(Asked::Missing, Asked::Found))
            }
            Err(github::Error::BadToken) => Err(github::Error::BadToken),
            Err(e) => {
                if matches!(e, github::Error::Unavailable { .. }) {
                    self.failures_in_a_row.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Asked::Unknown(e.to_string()))
            }
        }
    }
}
