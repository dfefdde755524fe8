//! Request routing, kept free of I/O so it can be unit-tested.

use crate::http::ClientResponse;

pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.as_bytes().to_vec(),
        }
    }

    fn json(status: u16, body: String) -> Self {
        Self {
            status,
            content_type: "application/json",
            body: body.into_bytes(),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let reason = match self.status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            500 => "Internal Server Error",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            _ => "",
        };
        let mut out = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.status,
            self.content_type,
            self.body.len()
        )
        .into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

/// Routes one request. `env` reads configuration, `fetch` performs upstream GETs.
pub fn route(
    method: &str,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    fetch: &dyn Fn(&str) -> Result<ClientResponse, String>,
) -> Response {
    if method != "GET" && method != "HEAD" {
        return Response::text(405, "only GET\n");
    }
    let path = path.split('?').next().unwrap_or(path);
    match path {
        "/healthz" | "/readyz" => Response::text(200, "ok\n"),
        "/" => Response::json(
            200,
            format!(
                "{{\"service\":{},\"version\":{},\"hostname\":{}}}\n",
                json_string(&env("SERVICE_NAME").unwrap_or_default()),
                json_string(&env("APP_VERSION").unwrap_or_default()),
                json_string(&hostname(env)),
            ),
        ),
        _ => match path.strip_prefix("/call/") {
            Some(var) if !var.is_empty() && !var.contains('/') => call(var, env, fetch),
            _ => Response::text(404, "not found\n"),
        },
    }
}

fn call(
    var: &str,
    env: &dyn Fn(&str) -> Option<String>,
    fetch: &dyn Fn(&str) -> Result<ClientResponse, String>,
) -> Response {
    let Some(url) = env(var) else {
        return Response::text(502, &format!("environment variable {var} is not set\n"));
    };
    match fetch(&url) {
        Ok(resp) if (200..300).contains(&resp.status) => Response {
            status: 200,
            content_type: "application/json",
            body: resp.body,
        },
        Ok(resp) => Response::text(
            502,
            &format!(
                "GET {url}: upstream status {}: {}\n",
                resp.status,
                String::from_utf8_lossy(&resp.body).trim_end()
            ),
        ),
        Err(e) => Response::text(502, &format!("GET {url}: {e}\n")),
    }
}

fn hostname(env: &dyn Fn(&str) -> Option<String>) -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| env("HOSTNAME"))
        .unwrap_or_default()
}

pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SERVICE_NAME" => Some("users".into()),
            "APP_VERSION" => Some("v\"1".into()),
            "USERS_URL" => Some("http://users.ns.svc.cluster.local:8080/".into()),
            "DOWN_URL" => Some("http://down:8080/".into()),
            _ => None,
        }
    }

    fn fetch(url: &str) -> Result<ClientResponse, String> {
        match url {
            "http://users.ns.svc.cluster.local:8080/" => Ok(ClientResponse {
                status: 200,
                body: b"{\"service\":\"users\"}".to_vec(),
            }),
            _ => Err("connection refused".into()),
        }
    }

    fn get(path: &str) -> Response {
        route("GET", path, &env, &fetch)
    }

    #[test]
    fn health_endpoints_answer_ok() {
        assert_eq!(get("/healthz").status, 200);
        assert_eq!(get("/readyz").status, 200);
        assert_eq!(get("/readyz?verbose").status, 200);
    }

    #[test]
    fn root_describes_the_service_as_json() {
        let r = get("/");
        assert_eq!(r.status, 200);
        assert_eq!(r.content_type, "application/json");
        let body = String::from_utf8(r.body).unwrap();
        assert!(body.starts_with("{\"service\":\"users\",\"version\":\"v\\\"1\",\"hostname\":"));
    }

    #[test]
    fn call_returns_the_upstream_body() {
        let r = get("/call/USERS_URL");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"{\"service\":\"users\"}");
    }

    #[test]
    fn call_failures_are_bad_gateway() {
        let r = get("/call/DOWN_URL");
        assert_eq!(r.status, 502);
        assert!(
            String::from_utf8(r.body)
                .unwrap()
                .contains("connection refused")
        );
        assert_eq!(get("/call/UNSET_URL").status, 502);
    }

    #[test]
    fn unknown_paths_and_methods_are_rejected() {
        assert_eq!(get("/nope").status, 404);
        assert_eq!(get("/call/").status, 404);
        assert_eq!(get("/call/A/B").status, 404);
        assert_eq!(route("POST", "/", &env, &fetch).status, 405);
    }

    #[test]
    fn responses_are_well_formed_http() {
        let bytes = Response::text(200, "ok\n").to_bytes();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text.contains("Content-Length: 3\r\n"));
        assert!(text.ends_with("\r\n\r\nok\n"));
    }
}
