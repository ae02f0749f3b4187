/* main_empty.c - the baseline of the size report: a program with nothing of
 * the library, linked the same way, whose size is subtracted. */
int main(void);

int main(void)
{
	for (;;) {
	}
}
