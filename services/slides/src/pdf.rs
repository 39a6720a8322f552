//! The slides as one PDF: a page per slide, each page one JPEG drawn to fill it. Written by
//! hand because that is all it needs — a catalog, a page tree, and per page an image XObject
//! (`DCTDecode`, so the JPEG bytes go in as they are) and a one-line content stream — and a
//! PDF library would bring fonts, layout and compression this does not use.

/// One page: a baseline JPEG and its pixel size. The page is sized at 72 pixels per inch.
pub struct PdfPage {
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

pub fn pdf(pages: &[PdfPage]) -> Vec<u8> {
    let mut out: Vec<u8> = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets: Vec<usize> = Vec::new();
    let object = |out: &mut Vec<u8>, offsets: &mut Vec<usize>, body: &[u8]| {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", offsets.len()).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    };
    // Objects: 1 catalog, 2 page tree, then per page: page, image, content.
    let kids: Vec<String> = (0..pages.len())
        .map(|i| format!("{} 0 R", 3 + i * 3))
        .collect();
    object(&mut out, &mut offsets, b"<< /Type /Catalog /Pages 2 0 R >>");
    object(
        &mut out,
        &mut offsets,
        format!(
            "<< /Type /Pages /Kids [{}] /Count {} >>",
            kids.join(" "),
            pages.len()
        )
        .as_bytes(),
    );
    for (i, page) in pages.iter().enumerate() {
        let (page_id, image_id, content_id) = (3 + i * 3, 4 + i * 3, 5 + i * 3);
        debug_assert_eq!(offsets.len() + 1, page_id);
        object(
            &mut out,
            &mut offsets,
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {w} {h}] \
                 /Resources << /XObject << /Im{i} {image_id} 0 R >> >> /Contents {content_id} 0 R >>",
                w = page.width,
                h = page.height
            )
            .as_bytes(),
        );
        let mut image = format!(
            "<< /Type /XObject /Subtype /Image /Width {} /Height {} /ColorSpace /DeviceRGB \
             /BitsPerComponent 8 /Filter /DCTDecode /Length {} >>\nstream\n",
            page.width,
            page.height,
            page.jpeg.len()
        )
        .into_bytes();
        image.extend_from_slice(&page.jpeg);
        image.extend_from_slice(b"\nendstream");
        object(&mut out, &mut offsets, &image);
        let draw = format!("q {} 0 0 {} 0 0 cm /Im{i} Do Q", page.width, page.height);
        object(
            &mut out,
            &mut offsets,
            format!("<< /Length {} >>\nstream\n{draw}\nendstream", draw.len()).as_bytes(),
        );
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", offsets.len() + 1).as_bytes(),
    );
    for offset in &offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            offsets.len() + 1
        )
        .as_bytes(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(haystack: &[u8], needle: &[u8]) -> usize {
        haystack
            .windows(needle.len())
            .rposition(|w| w == needle)
            .expect("present")
    }

    #[test]
    fn the_cross_reference_table_points_at_every_object() {
        let page = |n: u8| PdfPage {
            jpeg: vec![0xFF, 0xD8, n, 0xFF, 0xD9],
            width: 64,
            height: 36,
        };
        let bytes = pdf(&[page(1), page(2)]);
        assert!(bytes.starts_with(b"%PDF-1.4"));
        find(&bytes, b"/Count 2");
        let tail = String::from_utf8(bytes[find(&bytes, b"startxref\n")..].to_vec()).unwrap();
        let xref_at: usize = tail.lines().nth(1).unwrap().parse().unwrap();
        let table = String::from_utf8(bytes[xref_at..].to_vec()).unwrap();
        assert!(table.starts_with("xref\n0 9\n"));
        for (i, line) in table.lines().skip(3).take(8).enumerate() {
            let offset: usize = line[..10].parse().unwrap();
            let header = format!("{} 0 obj", i + 1);
            assert!(
                bytes[offset..].starts_with(header.as_bytes()),
                "object {}",
                i + 1
            );
        }
    }
}
