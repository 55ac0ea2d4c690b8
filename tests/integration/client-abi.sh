#!/bin/bash
# libsealvault as a downstream sees it: `make install` into a scratch DESTDIR with a custom
# PREFIX, then pkg-config finds the library, a program built only from the installed header and
# .pc file links and runs, the soname is versioned and only the sealvault.h functions are exported.
set -euo pipefail
B=${B:-build}
CC=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "client-abi: FAIL: $*" >&2; exit 1; }

prefix=/opt/svtest
make --no-print-directory -s B="$B" DESTDIR="$tmp/root" PREFIX="$prefix" install-libsealvault
root=$tmp/root$prefix
lib=$root/lib
[ -f "$lib/libsealvault.so.0.4.0" ] || fail "no versioned library in \$PREFIX/lib"
[ "$(readlink "$lib/libsealvault.so.0")" = libsealvault.so.0.4.0 ] || fail "libsealvault.so.0 link"
[ "$(readlink "$lib/libsealvault.so")" = libsealvault.so.0 ] || fail "libsealvault.so link"
[ -f "$root/include/sealvault.h" ] || fail "no header in \$PREFIX/include"
soname=$(readelf -d "$lib/libsealvault.so.0.4.0" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[ "$soname" = libsealvault.so.0 ] || fail "soname is '$soname', want libsealvault.so.0"

# Exported symbols = the SV_API functions of sealvault.h, nothing more.
nm -D --defined-only "$lib/libsealvault.so.0.4.0" | awk '$2 == "T" {sub(/@.*/, "", $3); print $3}' |
	sort >"$tmp/exported"
sed -n 's/^SV_API [^(]*[ *]\(sv_[a-z_]*\)(.*/\1/p' client/sealvault.h | sort >"$tmp/declared"
[ -s "$tmp/declared" ] || fail "found no SV_API declarations in client/sealvault.h"
diff -u "$tmp/declared" "$tmp/exported" || fail "exported symbols differ from sealvault.h"

export PKG_CONFIG_PATH=$tmp/root$prefix/lib/pkgconfig
[ "$(pkg-config --modversion sealvault)" = 0.4.0 ] || fail "pkg-config --modversion"
# The .pc file names the real prefix; point the compiler at the DESTDIR copy.
cflags=$(pkg-config --define-prefix --cflags sealvault 2>/dev/null ||
	pkg-config --cflags sealvault)
[ "$(pkg-config --variable=libdir sealvault)" = "$prefix/lib" ] || fail ".pc libdir"
cat >"$tmp/use.c" <<'C'
#include <sealvault.h>
#include <stdio.h>
#include <string.h>
int main(void)
{
	char code[SV_CODE_LEN + 1];
	struct sv_ctx *ctx;
	if (sv_ctx_new(&ctx, "http://insecure.example") != -1)
		return 1;
	if (sv_ctx_new(&ctx, "https://127.0.0.1:9") != 0 || sv_generate_code(code) != 0)
		return 2;
	int left = 7;
	unsigned char *s;
	size_t n;
	sv_ctx_set_timeout(ctx, 5);
	enum sv_result r = sv_recover(ctx, "u", (const unsigned char *)"p", 1, &s, &n, &left);
	printf("%s %zu %d %s\n", sv_result_str(r), strlen(code), left, sv_ctx_error(ctx));
	/* 0.3: the token variants; a token that is not a JWT never leaves */
	if (sv_recover_token(ctx, "not a token", "u", (const unsigned char *)"p", 1, &s, &n,
	                     &left) != SV_RESULT_ERROR || left != -1)
		return 4;
	sv_ctx_free(ctx);
	/* 0.4: threshold realms; a missing realm list is an error that names the file */
	struct sv_realms *rs;
	if (sv_realms_new(&rs) != 0 || sv_realms_load(rs, "/nonexistent/realms.json") != -1 ||
	    strstr(sv_realms_error(rs), "/nonexistent/realms.json") == NULL ||
	    sv_realms_count(rs) != 0 ||
	    sv_realms_recover(rs, "u", (const unsigned char *)"p", 1, &s, &n, &left) !=
	        SV_RESULT_ERROR)
		return 5;
	sv_realms_free(rs);
	return r == SV_RESULT_ERROR && left == -1 ? 0 : 3;
}
C
# shellcheck disable=SC2086
$CC -o "$tmp/use" "$tmp/use.c" -I"$root/include" $cflags -L"$lib" -lsealvault
out=$(LD_LIBRARY_PATH=$lib "$tmp/use") || fail "program linked against the installed library failed: $out"
case $out in
"error 29 -1 "*127.0.0.1*) ;;
*) fail "unexpected output: $out" ;;
esac
# (into a variable first: grep -q closing the pipe early would fail the pipeline under pipefail)
deps=$(LD_LIBRARY_PATH=$lib ldd "$tmp/use")
grep -qF "libsealvault.so.0 => $lib/libsealvault.so.0" <<<"$deps" ||
	fail "the program does not load libsealvault.so.0 from \$PREFIX/lib: $deps"
echo "client-abi: ok (soname libsealvault.so.0, $(wc -l <"$tmp/exported") exported sv_* functions, pkg-config)"
