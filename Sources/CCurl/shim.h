#include <curl/curl.h>

// curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call: these typed
// forwarders are the only calls Strata needs.
static inline CURLcode strata_curl_set_long(CURL *curl, CURLoption option, long value) {
    return curl_easy_setopt(curl, option, value);
}
static inline CURLcode strata_curl_set_pointer(CURL *curl, CURLoption option, const void *value) {
    return curl_easy_setopt(curl, option, value);
}
static inline CURLcode strata_curl_set_offset(CURL *curl, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(curl, option, value);
}
typedef size_t (*strata_curl_write_fn)(char *data, size_t size, size_t count, void *context);
static inline CURLcode strata_curl_set_write(CURL *curl, strata_curl_write_fn fn) {
    return curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, fn);
}
typedef int (*strata_curl_progress_fn)(void *context, curl_off_t total, curl_off_t now,
                                        curl_off_t upTotal, curl_off_t upNow);
static inline CURLcode strata_curl_set_progress(CURL *curl, strata_curl_progress_fn fn) {
    return curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, fn);
}
static inline long strata_curl_response_code(CURL *curl) {
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    return code;
}
