/* main.c - theater-server: wires every layer together (placeholder until the
 * supervisor lands). */
#include <stdio.h>

int main(void)
{
	puts("theater-server " THEATER_VERSION);
	return 0;
}
