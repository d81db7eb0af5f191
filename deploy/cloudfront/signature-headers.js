// sdk-cdn: signature-based SRI headers behind S3 + CloudFront.
//
// `sdk-cdn publish --sri-key` stores three header values with every file as
// S3 user metadata, which S3 returns as `x-amz-meta-unencoded-digest`,
// `x-amz-meta-signature-input` and `x-amz-meta-signature`. Browsers look for
// `Unencoded-Digest`, `Signature-Input` and `Signature`. This CloudFront
// Function (event type: viewer response; runtime cloudfront-js-1.0 or 2.0)
// renames them, and says `Accept-Ranges: none` (a partial body cannot be
// checked against a signature over the whole body).
//
// All three or none: a response with only some of them is sent with none,
// so a page that pins the key blocks it (fail closed) rather than running
// bytes whose proof is incomplete. A 206 (a range) never gets them.
//
// Checked by tests/cloudfront_function.rs, which runs this file in node on
// the metadata a real publish stored. Deploy: docs/SIGNING.md.

var SIGNATURE_HEADERS = ['unencoded-digest', 'signature-input', 'signature'];
var METADATA_PREFIX = 'x-amz-meta-';

function handler(event) {
    var response = event.response;
    var headers = response.headers;
    var values = [];
    for (var i = 0; i < SIGNATURE_HEADERS.length; i++) {
        var stored = headers[METADATA_PREFIX + SIGNATURE_HEADERS[i]];
        if (stored && typeof stored.value === 'string' && stored.value !== '') {
            values.push(stored.value);
        }
        delete headers[METADATA_PREFIX + SIGNATURE_HEADERS[i]];
    }
    if (values.length === SIGNATURE_HEADERS.length && response.statusCode !== 206) {
        for (var j = 0; j < SIGNATURE_HEADERS.length; j++) {
            headers[SIGNATURE_HEADERS[j]] = { value: values[j] };
        }
        headers['accept-ranges'] = { value: 'none' };
    }
    return response;
}
