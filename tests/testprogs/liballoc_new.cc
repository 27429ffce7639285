// A shared library whose C++ functions leak through operator new and new[]: memleak must name
// widgets::make_widget and widgets::make_buffer (the callers of new, in liballoc_new.so) even though
// libstdc++'s operator new has no frame pointer. Built by tests/testprogs/memleak.cmake.
#include <cstddef>

namespace widgets {

struct Widget {
  char payload[4000];
  Widget* next;
};  // 4008 bytes

Widget* make_widget() { return new Widget(); }

char* make_buffer(std::size_t size) { return new char[size]; }

}  // namespace widgets

extern "C" void leak_widgets(int count) {
  widgets::Widget* last = nullptr;
  for (int i = 0; i < count; i++) last = widgets::make_widget();
  (void)last;
  widgets::make_buffer(50021);
}
