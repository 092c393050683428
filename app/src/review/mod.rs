//! Review: each case's state and comment ([`sheet`]) and the case list with its filter
//! ([`case_list`]).

pub mod case_list;
pub mod sheet;
