mod aws;
mod cli;
mod corpus;
mod golden;
mod infra;
mod lambda;
mod support;
