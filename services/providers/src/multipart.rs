//! A minimal multipart/form-data body (RFC 7578) for OpenAI's `/images/edits`: text fields and
//! files, nothing streamed. Built by hand to keep reqwest's multipart feature (and mime_guess)
//! out of the workspace for one endpoint.

use rand::Rng;

pub(crate) struct Multipart {
    boundary: String,
    body: Vec<u8>,
}

impl Multipart {
    pub fn new() -> Self {
        // Random, so no file's bytes can contain the boundary by accident in practice.
        let boundary = format!("atelier-{:032x}", rand::rng().random::<u128>());
        Self {
            boundary,
            body: Vec::new(),
        }
    }

    pub fn text(&mut self, name: &str, value: &str) {
        self.head(&format!(
            "Content-Disposition: form-data; name=\"{name}\"\r\n"
        ));
        self.body.extend_from_slice(value.as_bytes());
        self.body.extend_from_slice(b"\r\n");
    }

    pub fn file(&mut self, name: &str, filename: &str, content_type: &str, bytes: &[u8]) {
        self.head(&format!(
            "Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n\
             Content-Type: {content_type}\r\n"
        ));
        self.body.extend_from_slice(bytes);
        self.body.extend_from_slice(b"\r\n");
    }

    fn head(&mut self, headers: &str) {
        self.body
            .extend_from_slice(format!("--{}\r\n{headers}\r\n", self.boundary).as_bytes());
    }

    /// The `Content-Type` header value and the finished body.
    pub fn finish(mut self) -> (String, Vec<u8>) {
        self.body
            .extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        (
            format!("multipart/form-data; boundary={}", self.boundary),
            self.body,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let mut form = Multipart::new();
        form.text("prompt", "a cat");
        form.file("image", "image.png", "image/png", b"PNG");
        let boundary = form.boundary.clone();
        let (content_type, body) = form.finish();
        assert_eq!(
            content_type,
            format!("multipart/form-data; boundary={boundary}")
        );
        let expected = format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\na cat\r\n\
             --{b}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"image.png\"\r\n\
             Content-Type: image/png\r\n\r\nPNG\r\n--{b}--\r\n",
            b = boundary
        );
        assert_eq!(String::from_utf8(body).unwrap(), expected);
    }
}
