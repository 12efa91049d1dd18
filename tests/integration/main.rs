mod aws;
mod cli;
mod corpus;
mod golden;
mod lambda;
mod support;
