mod aws;
mod cli;
mod corpus;
mod faults;
mod golden;
mod infra;
mod lambda;
mod support;
