FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --locked --release --bin artifact-git

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/artifact-git /usr/local/bin/artifact-git
EXPOSE 8080
ENTRYPOINT ["artifact-git"]
CMD ["serve"]
