/* nosym.c — test-only shared object that is not a Tributary plugin. */
int nosym_answer(void);
int nosym_answer(void)
{
    return 42;
}
