// SPDX-License-Identifier: MIT
/*
 * Linked into a second build of the kernel's ip_local_port_range selftest
 * (bench/run does it; the selftest's own source is not copied here). Before
 * the selftest's main() it does what ip_local_port_range.sh and
 * in_netns.sh do with shell tools: a new network namespace, lo up, and
 * net.ipv4.ip_local_port_range = "40000 49999" inside it. The host's (or
 * the VM's initial) namespace is never written. No shell, no ip, no sysctl
 * binary needed, so the result runs as a VM payload on its own. It also
 * prints the kernel's uptime and CPU count on stderr, once, at start.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "netns_setup: %s: %s\n", what, strerror(errno));
	exit(1);
}

__attribute__((constructor)) static void netns_setup(void)
{
	static const char range[] = "40000 49999\n";
	struct ifreq ifr;
	struct stat st;
	char up[64] = "";
	FILE *f;
	int fd;

	if (stat("/proc/sys", &st) != 0) {
		mkdir("/proc", 0555);
		if (mount("proc", "/proc", "proc", 0, NULL) != 0)
			die("mount /proc");
	}
	/* bench/bench.py reads this line to place the guest's clock. */
	f = fopen("/proc/uptime", "r");
	if (f) {
		if (!fgets(up, sizeof(up), f))
			up[0] = 0;
		fclose(f);
	}
	fprintf(stderr, "netns_setup: uptime %.*s s, %ld CPUs online\n",
		(int)strcspn(up, " \n"), up, sysconf(_SC_NPROCESSORS_ONLN));
	if (unshare(CLONE_NEWNET) != 0)
		die("unshare(CLONE_NEWNET)");

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket for SIOCSIFFLAGS");
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) != 0)
		die("SIOCGIFFLAGS lo");
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) != 0)
		die("SIOCSIFFLAGS lo up");
	close(fd);

	fd = open("/proc/sys/net/ipv4/ip_local_port_range", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		die("open /proc/sys/net/ipv4/ip_local_port_range");
	if (write(fd, range, sizeof(range) - 1) != (ssize_t)(sizeof(range) - 1))
		die("write ip_local_port_range");
	close(fd);
}
