// Package nginxtest tests the documented reverse-proxy configuration,
// deploy/nginx/ssehub.conf, with a real nginx in front of the real ssehub
// binary: the configuration is generated from the documented file by
// substituting ports, paths and the read timeout only, so what the
// documentation says is what is tested. It has tests only.
package nginxtest
