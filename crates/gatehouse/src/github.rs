//! GitHub REST client. (Being built.)
